# yan — plain Makefile. Targets:
#   make            library (static + shared) and the yan command
#   make run        the main job: the tokenizer on the shipped sample
#   make test       unit tests, sanitizer unit tests, end-to-end tests vs peers
#   make unit       unit tests only          make asan   unit tests under ASan+UBSan
#   make fuzz       build libFuzzer targets   make fuzz-run  short bounded fuzz runs
#   make bench      benchmarks side by side with the peers
#   make install    PREFIX=/usr/local: lib, header, yan, pkg-config file
# make MPI=1: data-parallel `yan train` over MPI (mpicc, -DYAN_MPI), built in build/mpi
ifeq ($(MPI),1)
CC      := mpicc
BUILD   ?= build/mpi
override CFLAGS += -DYAN_MPI
endif
CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
OPT     ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
# the knowledge base (src/rag): SQLite (FTS5), poppler-glib (PDF), libxml2 (HTML), through pkg-config
RAG_PKGS := sqlite3 poppler-glib libxml-2.0
RAG_CFLAGS := $(shell pkg-config --cflags $(RAG_PKGS) 2>/dev/null)
RAG_LDLIBS := $(shell pkg-config --libs $(RAG_PKGS) 2>/dev/null)
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Iinclude -Isrc -pthread -fPIC -fvisibility=hidden $(RAG_CFLAGS) $(CFLAGS)
# the server (src/serve): libmicrohttpd, cJSON, libcurl (the upstream proxy)
SERVE_LDLIBS := -lmicrohttpd -lcjson -lcurl
LDLIBS_ALL := -lm -pthread $(SERVE_LDLIBS) $(RAG_LDLIBS) $(LDLIBS)

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cmd/yan/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: tools all lib cli deps test unit asan fuzz fuzz-run bench install clean e2e run
all: deps lib cli

# The main job: the built-in model (models/yan-default.gguf, trained by yan
# itself: scripts/make_default_model.sh) writes, then answers in a chat.
run: all
	@echo "--- yan run -p 'And God said' (the built-in model):"
	@$(BUILD)/yan run -p 'And God said' -n 64 --temp 0.7 --seed 1
	@echo
	@echo "--- yan chat (the same model, fine-tuned on chat turns):"
	@printf 'Continue: In the beginning God created\n请背诵《静夜思》\n' | $(BUILD)/yan chat -n 64 --temp 0.3 --seed 1

deps:
	@scripts/deps.sh build

lib: $(BUILD)/libyan.a $(BUILD)/libyan.so
cli: $(BUILD)/yan

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libyan.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libyan.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/yan: $(CLI_OBJ) $(BUILD)/libyan.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libyan.a $(LDLIBS_ALL)

$(BUILD)/unit: $(TEST_OBJ) $(BUILD)/libyan.a
	$(CC) -o $@ $(TEST_OBJ) $(BUILD)/libyan.a -lpcre2-8 $(LDLIBS_ALL)

$(BUILD)/bench_%: bench/%.c $(BUILD)/libyan.a
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libyan.a $(LDLIBS_ALL)

# test and developer tools (tools/*.c): may use library internals
tools: $(TOOL_BIN)
$(BUILD)/tools/%: tools/%.c $(BUILD)/libyan.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libyan.a $(LDLIBS_ALL)

unit: deps-test $(BUILD)/unit
	$(BUILD)/unit

deps-test:
	@scripts/deps.sh test

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (separate build dir).
asan: deps-test
	$(MAKE) BUILD=$(BUILD)/asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDLIBS="-fsanitize=address,undefined" $(BUILD)/asan/unit $(BUILD)/asan/yan
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/unit

e2e: deps-test all
	tests/run_e2e.sh

test: deps-test all $(BUILD)/unit $(BENCH_SRC:bench/%.c=$(BUILD)/bench_%) $(TOOL_BIN)
	tests/run.sh

FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
fuzz: deps-test $(FUZZ_BIN)
# the library is compiled once with the fuzzing sanitizers, then linked into each harness
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -Isrc -pthread -fsanitize=fuzzer-no-link,address,undefined $(RAG_CFLAGS)
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/libyan-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/fuzz/libyan-fuzz.a
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -Isrc -pthread -fsanitize=fuzzer,address,undefined \
	    -o $@ $< $(BUILD)/fuzz/libyan-fuzz.a -lm $(SERVE_LDLIBS) $(RAG_LDLIBS)

fuzz-run: fuzz
	tests/fuzz_run.sh $(FUZZ_SECONDS)

bench: deps-test all $(BENCH_SRC:bench/%.c=$(BUILD)/bench_%) $(TOOL_BIN)
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libyan.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libyan.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/yan.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/yan $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/yan
	install -m 644 models/yan-default.gguf $(DESTDIR)$(PREFIX)/share/yan/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/#define YAN_VERSION_STRING "\(.*\)"/\1/p' include/yan.h)|' \
	    yan.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/yan.pc

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
