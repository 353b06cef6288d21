# espipe — build, test and check.
#   make                  build the C modules for Lua 5.4 into build/5.4/
#   make LUA=5.1|5.2|5.3|luajit   the same for another Lua, into build/<ver>/
#   make test             every spec on every installed Lua, plus the conformance suites
#   make check            specs under ASan+UBSan, then short libFuzzer runs
#   make bench            the benchmarks of bench/ (see bench/README.md)
#   make demo             the demo of README.md
#   make rock             espipe-<version>-1.rockspec and the source rocks, offline (.ci/make-rock)
#   make cli-reference    README's option reference from each command's --help

LUA ?= 5.4
ALL_LUAS := 5.4 5.3 5.2 5.1 luajit

lua_interp = $(if $(filter luajit,$(1)),luajit,lua$(1))
lua_incdir = $(if $(filter luajit,$(1)),/usr/include/luajit-2.1,/usr/include/lua$(1))
INSTALLED_LUAS := $(foreach v,$(ALL_LUAS),$(if $(wildcard $(call lua_incdir,$(v))/lua.h),$(if $(shell command -v $(call lua_interp,$(v))),$(v))))

CC ?= cc
OPT ?= -O2
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_ALL = -std=c99 -D_POSIX_C_SOURCE=200809L $(OPT) -g -fPIC -fvisibility=hidden $(WARN) \
             -I$(call lua_incdir,$(LUA)) -Icsrc $(EXTRA_CFLAGS)
LDFLAGS_ALL = -shared $(EXTRA_LDFLAGS)

BUILD := build/$(LUA)
# csrc/README.md: which folder holds what. espipe.core is every folder but
# curl/ and parquet/, which are their own modules.
CORE_DIRS := base json bulk search routing io os
CORE_SRC := $(wildcard csrc/*.c $(foreach d,$(CORE_DIRS),csrc/$(d)/*.c))
SHARED_SRC := csrc/base/compat.c csrc/base/strbuf.c
CURL_SRC := $(wildcard csrc/curl/*.c)
PARQUET_SRC := $(wildcard csrc/parquet/*.c)
JSON_CODEC_SRC := csrc/json/decoder.c csrc/json/encoder.c csrc/json/number.c csrc/base/utf8.c
# the Parquet writer reads pages with the search/ envelope walker, and tells their position
PAGE_SRC := csrc/search/page_envelope.c csrc/search/page_position.c

obj = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(1))

MODULES := $(BUILD)/espipe/core.so
ifneq ($(CURL_SRC),)
MODULES += $(BUILD)/espipe/curl_multi.so
endif
ifneq ($(PARQUET_SRC),)
MODULES += $(BUILD)/espipe/parquet_writer.so
endif

.PHONY: all test check bench demo clean all-luas rock cli-reference
all: $(MODULES)

$(BUILD)/obj/%.o: csrc/%.c $(wildcard csrc/*.h csrc/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/espipe/core.so: $(call obj,$(CORE_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lz -lzstd

$(BUILD)/espipe/curl_multi.so: $(call obj,$(CURL_SRC) $(SHARED_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcurl -lz

$(BUILD)/espipe/parquet_writer.so: $(call obj,$(PARQUET_SRC) $(PAGE_SRC) $(JSON_CODEC_SRC) $(SHARED_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lsnappy -lzstd -lz

all-luas:
	@for v in $(INSTALLED_LUAS); do $(MAKE) --no-print-directory LUA=$$v all || exit 1; done

test: all-luas
	@sh spec/support/run_tests.sh $(INSTALLED_LUAS)

check: all
	@sh spec/support/run_check.sh

bench: all
	@sh bench/run.sh

demo: all
	@bin/espipe demo

rock:
	@sh .ci/make-rock

cli-reference:
	@lua5.4 .ci/cli-reference

clean:
	rm -rf build
