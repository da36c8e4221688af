/* cmd_finetune.c — `yan finetune`: supervised fine-tuning of a llama GGUF on
 * chat conversations (OpenAI `messages` JSONL), in full or with LoRA
 * adapters (also on a quantized base, kept quantized and frozen), or
 * resuming such a run. A thin shell: it parses the flags into a
 * yan_train_config with base_path set (src/train/trainer.h does the work;
 * the flags shared with `yan train` are parsed in train_flags.c)
 * and runs it through cmd_train_session (cmd_train.c), which prints the
 * progress and maps failures to exit codes: 0 done, 1 error, 2 bad usage,
 * 3 training diverged. Bad input fails before anything is written, so an
 * existing OUT/ckpt.gguf survives a failed run. */
#include "train_flags.h"

#include <math.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: yan finetune BASE.gguf --data CHAT.jsonl -o OUT [options]\n"
            "       yan finetune --resume OUT/ckpt.gguf [BASE.gguf] [--steps N] [options]\n\n"
            "Fine-tunes the llama model BASE on conversations, one JSON object a line in OpenAI's\n"
            "format: {\"messages\": [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"...\"}, ...]}.\n"
            "Each conversation is rendered with the base's chat template and only the assistant\n"
            "replies (and their end-of-turn markers) are trained. Writes into OUT:\n"
            "  model.gguf     the fine-tuned model (full fine-tuning): the base's architecture,\n"
            "                 tokenizer and chat template; yan run, yan chat, llama.cpp\n"
            "  adapter.gguf   the LoRA adapter (with --lora-rank), llama.cpp's adapter format:\n"
            "                 yan run --lora, yan lora merge, llama.cpp --lora\n"
            "  ckpt.gguf      weights or adapters + optimizer state, every --ckpt-every steps\n"
            "  loss.csv, loss.svg   training and validation loss\n\n"
            "data:\n"
            "  --data FILE         training conversations (JSONL)\n"
            "  --val-data FILE     validation conversations (default: hold out --val-fraction)\n"
            "  --val-fraction F    share of the conversations held out for validation (default 0.05)\n"
            "  --chat-template T   chatml, llama2, llama3, zephyr, mistral, gemma or phi3 (default: the\n"
            "                      family of the base's tokenizer.chat_template; chatml when it has none)\n"
            "LoRA (default: full fine-tuning):\n"
            "  --lora-rank R       train rank-R adapters only; the base stays frozen, and when it is\n"
            "                      quantized it stays quantized (QLoRA-style)\n"
            "  --lora-alpha A      adapter scale alpha / R (default A = R)\n"
            "  --lora-targets L    matrices to adapt, from q,k,v,o,gate,up,down or all (default all)\n"
            "  --exact-base        quantized base: compute its forward on dequantized f32 tiles (the\n"
            "                      exact gradient of the dequantized model) instead of yan's quantized\n"
            "                      kernels with 8-bit activations (faster; what yan run computes)\n"
            "training:\n"
            "  --batch B           conversations per micro-batch (default 8)\n"
            "  --seq T             tokens per conversation; longer ones are cut (default: the longest\n"
            "                      conversation, at most the base's context)\n"
            CMD_TRAIN_HELP_ACCUM
            "  --epochs N          passes over the conversations (default 3), or\n"
            "  --steps N           optimizer steps in all\n"
            "  --lr X              peak learning rate (default 2e-5; 2e-4 with LoRA)\n"
            CMD_TRAIN_HELP_SCHEDULE
            "  --wd X              AdamW weight decay (default 0; applies to the adapters with LoRA)\n"
            "  --beta2 X           AdamW beta2 (default 0.999)\n"
            CMD_TRAIN_HELP_CLIP
            "  --seed N            shuffling, held-out split and adapter initialisation (default 1337)\n"
            "  --threads N         threads (default: all cores)\n"
            "reporting:\n"
            CMD_TRAIN_HELP_EVAL_EVERY
            CMD_TRAIN_HELP_RUN
            "resuming:\n"
            "  --resume CKPT       continue the run saved in CKPT (bit-identical to an uninterrupted\n"
            "                      run); the base must be the same file (size and content are checked;\n"
            "                      give its new path as BASE if it moved), as must the data.\n\n"
            "Exit status: 0 done, 1 error, 2 bad usage, 3 the loss became NaN or infinite.\n\n"
            "example: yan finetune base.gguf --data chat.jsonl --lora-rank 16 -o out/lora\n"
            "         yan run base.gguf --lora out/lora/adapter.gguf --chat -p 'Hello'\n");
}

static void die_usage(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "yan finetune: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n'yan finetune --help' lists the options\n");
    exit(2);
}

static void opt_str(const char *opt, const char *val, char *dst, size_t cap) {
    if (!val) die_usage("%s needs a value%s", opt, "");
    if (strlen(val) >= cap) die_usage("%s: '%s' is too long", opt, val);
    strcpy(dst, val);
}

/* This command's flags that fix the numbers of a run: not accepted with
 * --resume (cmd_train_flag notes the shared ones; --exact-base too). */
static const char *const FIXED[] = {"--lora-rank", "--lora-alpha", "--lora-targets", "--chat-template",
                                    "--val-fraction", "--epochs"};

int yan_cmd_finetune(int argc, char **argv) {
    yan_train_config c = yan_train_config_default();
    c.batch = 8;
    c.seq = 0;
    c.steps = 0;
    c.epochs = 3;
    c.lr = -1; /* not given: 2e-5, 2e-4 with LoRA (set below) */
    c.weight_decay = 0;
    c.beta2 = 0.999f;
    cmd_train_flags f = cmd_train_flags_init("yan finetune", true);
    const char *val = NULL, *base = NULL, *targets = NULL, *chat = NULL;
    int64_t epochs = -1, rank = 0;
    float alpha = -1;
    bool quiet = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cmd_is_help(a)) {
            usage(stdout);
            return 0;
        }
        for (size_t k = 0; k < sizeof FIXED / sizeof FIXED[0]; k++)
            if (!strcmp(a, FIXED[k]) && !f.fixed) f.fixed = FIXED[k];
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        }
        if (!strcmp(a, "--exact-base")) {
            if (!f.fixed) f.fixed = a;
            c.exact_base = true;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (base) die_usage("unexpected argument '%s' (the base is %s)", a, base);
            base = a;
            continue;
        }
        if (!v) die_usage("%s needs a value%s (or it is an unknown option)", a, "");
        int r = cmd_train_flag(&f, &c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--val-data")) val = v;
        else if (!strcmp(a, "--chat-template")) chat = v;
        else if (!strcmp(a, "--val-fraction")) r = cmd_train_f32(&f, a, v, &c.val_fraction);
        else if (!strcmp(a, "--lora-rank")) rank = cmd_int(a, v);
        else if (!strcmp(a, "--lora-alpha")) r = cmd_train_f32(&f, a, v, &alpha);
        else if (!strcmp(a, "--lora-targets")) targets = v;
        else if (!strcmp(a, "--epochs")) epochs = cmd_int(a, v);
        else die_usage("unknown option '%s'%s", a, "");
        if (r < 0) return 2;
        i++;
    }
    if (f.steps >= 0 && epochs >= 0) die_usage("give --steps or --epochs, not both%s%s", "", "");

    const char *resume = f.resume;
    if (resume) {
        if (f.fixed)
            die_usage("%s cannot be changed when resuming: the checkpoint fixes the model and the "
                      "hyper-parameters (start a new run instead)%s", f.fixed, "");
        int threads = c.threads;
        int64_t stop_after = c.stop_after;
        yan_status s = yan_ckpt_read_config(resume, &c);
        if (s) return cmd_fail("cannot resume", s);
        if (!c.base_path[0]) {
            fprintf(stderr, "yan finetune: %s is a pre-training checkpoint: resume it with yan train --resume\n", resume);
            return 2;
        }
        c.threads = threads;
        c.stop_after = stop_after;
        if (f.steps >= 0) {
            c.steps = f.steps; /* a new total */
            c.epochs = 0;
        }
    } else {
        if (!base) die_usage("the base model (BASE.gguf) is required, or --resume CKPT%s%s", "", "");
        if (!f.data) die_usage("--data CHAT.jsonl (the conversations) is required%s%s", "", "");
        if (!f.out) die_usage("-o OUT (the output directory) is required%s%s", "", "");
        if (rank > 0) {
            c.lora.rank = (int32_t)rank;
            c.lora.alpha = alpha > 0 ? alpha : (float)rank;
            if (yan_tlora_parse_targets(targets ? targets : "all", &c.lora.targets)) {
                fprintf(stderr, "yan finetune: --lora-targets: %s\n", yan_last_error());
                return 2;
            }
        } else if (alpha >= 0 || targets || c.exact_base) {
            die_usage("--lora-alpha, --lora-targets and --exact-base need --lora-rank R%s%s", "", "");
        }
        if (c.lr < 0) c.lr = rank > 0 ? 2e-4f : 2e-5f;
        if (f.steps >= 0) {
            c.steps = f.steps;
            c.epochs = 0;
        }
        if (epochs >= 0) c.epochs = epochs;
        if (chat) opt_str("--chat-template", chat, c.chat_template, sizeof c.chat_template);
    }
    if (base) opt_str("BASE", base, c.base_path, sizeof c.base_path);
    if (f.data) opt_str("--data", f.data, c.sft_data, sizeof c.sft_data);
    if (val) opt_str("--val-data", val, c.sft_val, sizeof c.sft_val);
    if (f.out) opt_str("-o", f.out, c.out_dir, sizeof c.out_dir);
    if (f.eval_every >= 0) c.eval_every = f.eval_every;
    if (f.ckpt_every >= 0) c.ckpt_every = f.ckpt_every;
    return cmd_train_session(&c, resume, quiet, f.log_every, "yan finetune");
}
