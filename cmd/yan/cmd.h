/* cmd.h — the yan command: one file per subcommand, each a thin shell over
 * include/yan.h. Shared helpers for argument parsing and input reading. */
#ifndef YAN_CMD_H
#define YAN_CMD_H
#include "yan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int yan_cmd_version(int argc, char **argv);
int yan_cmd_tokenize(int argc, char **argv);
int yan_cmd_detokenize(int argc, char **argv);
int yan_cmd_tokenizer(int argc, char **argv);
int yan_cmd_tokenizer_train(int argc, char **argv);

/* Print "yan: <what>: <status>: <detail>" to stderr; returns 1. */
int cmd_fail(const char *what, yan_status s);
/* Read a whole stream or file (path "-" = stdin) into a malloc'ed buffer. */
char *cmd_read_all(const char *path, size_t *len);
/* True if arg is "-h" or "--help". */
int cmd_is_help(const char *arg);
/* Parse a non-negative int option value; exits with a message on error. */
int cmd_int(const char *opt, const char *val);
#endif
