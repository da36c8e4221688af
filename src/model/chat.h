/* chat.h — internal interface of the chat templates (chat.c): the formatter
 * as a function of a family name and messages, and the recogniser of a
 * family from the text of a tokenizer.chat_template. Both need no model, so
 * tests and tools call them directly; the public yan_chat_format and
 * yan_chat_template_family wrap them with yan_model_chat_template(m). */
#ifndef YAN_MODEL_CHAT_H
#define YAN_MODEL_CHAT_H

#include "yan.h"

/* Format msgs[0..n) with the family's layout. Returns the bytes written to
 * buf (NUL-terminated; the count excludes the NUL), or -(bytes needed
 * including the NUL) when cap is too small, with nothing written. Returns
 * INT64_MIN with yan_last_error() set for an unknown family
 * (YAN_ERR_UNSUPPORTED, naming the known ones) or a message without a role
 * (YAN_ERR_INVALID_ARG). A NULL content is formatted as "".
 * The text never starts with the BOS token's text: the tokenizer adds BOS.
 * Thread-safe (no state). */
int64_t yan_chat_format_family(const char *family, const yan_chat_message *msgs, size_t n, bool add_assistant,
                               char *buf, size_t cap);

/* The family whose markers appear in template_text (a Jinja chat template):
 * "chatml", "llama2", "llama3", "zephyr", "mistral", "gemma" or "phi3".
 * NULL, empty or unrecognised text gives "chatml" with *recognised = false.
 * recognised may be NULL. Returns a static string. */
const char *yan_chat_detect(const char *template_text, bool *recognised);

/* The known family names, comma separated (static string). */
const char *yan_chat_family_names(void);

/* true when name is one of the known families. */
bool yan_chat_family_known(const char *name);

#endif /* YAN_MODEL_CHAT_H */
