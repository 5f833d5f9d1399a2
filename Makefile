# P2C2R: one Makefile for build, deps, run, test, bench, install.
# `make` builds bin/*; `make run` and `make test` install what is missing first.

PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKGS      := libzmq libczmq libprotobuf-c libpq libwebsockets jansson openssl zlib libpng libseccomp
OPT       ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) -ffp-contract=off \
              -fno-fast-math -Ibuild/gen -Icommon -Iagent -Iagent/kernels
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS    += $(CFLAGS_BASE) $(PKG_CFLAGS) $(SAN)
LDLIBS    += $(PKG_LIBS) -lpthread -lm
LDFLAGS   += $(SAN)
OBJ       := build/obj$(if $(SAN),-san)
# Quiet by default; `make V=1` shows the whole commands
Q         := $(if $(V),,@)

PROCS     := broker gateway scheduler ledger agent ctl
BINS      := $(addprefix bin/p2c2r-,$(PROCS))
GEN_C     := build/gen/proto/p2c2r.pb-c.c
GEN_H     := build/gen/proto/p2c2r.pb-c.h

COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(COMMON_SRCS)) $(OBJ)/gen/p2c2r.pb-c.o
# Sources of a process, without the file holding main() (*_main.c)
# (agent includes its kernels; "kernels" names the kernels alone, for their tests)
srcs_of    = $(filter-out %_main.c,$(if $(filter kernels,$(1)),$(wildcard agent/kernels/*.c),\
             $(wildcard $(1)/*.c) $(if $(filter agent,$(1)),$(wildcard agent/kernels/*.c))))
objs_of    = $(patsubst %.c,$(OBJ)/%.o,$(call srcs_of,$(1)))
main_of    = $(patsubst %.c,$(OBJ)/%.o,$(wildcard $(1)/*_main.c))

UNIT_TESTS := $(patsubst tests/unit/%.c,build/test/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps run test unit bench asan install clean stop test-deploy
all: $(BINS)

deps:
	@deploy/deps.sh

$(GEN_C) $(GEN_H): proto/p2c2r.proto
	@mkdir -p build/gen
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=build/gen proto/p2c2r.proto

$(OBJ)/gen/p2c2r.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(OBJ)/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(OBJ)/libp2c2r-common.a: $(COMMON_OBJS)
	$(Q)ar rcs $@ $^

define PROC_RULE
bin/p2c2r-$(1): $(call main_of,$(1)) $(call objs_of,$(1)) $(OBJ)/libp2c2r-common.a
	@mkdir -p bin
	@echo "  LINK    $$@"
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROCS),$(eval $(call PROC_RULE,$(p))))

# tests/unit/test_X.c links the sources of process X and the common library
define TEST_RULE
build/test/test_$(1): tests/unit/test_$(1).c $(call objs_of,$(1)) $(OBJ)/libp2c2r-common.a
	@mkdir -p build/test
	@echo "  LINK    $$@"
	$$(Q)$$(CC) $$(CFLAGS) -I$(1) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach t,$(patsubst build/test/test_%,%,$(UNIT_TESTS)),$(eval $(call TEST_RULE,$(t))))

# Benchmark tools (tests/bench/*.c), linked with every process's objects
# (their prefixes keep names apart) and the common library
BENCH_TOOLS := $(patsubst tests/bench/%.c,build/bench/%,$(wildcard tests/bench/*.c))
ALL_PROC_OBJS := $(foreach p,$(PROCS),$(call objs_of,$(p)))
build/bench/%: tests/bench/%.c $(ALL_PROC_OBJS) $(OBJ)/libp2c2r-common.a
	@mkdir -p build/bench
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(addprefix -I,$(PROCS)) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(BINS) $(UNIT_TESTS)

test: deps
	@$(MAKE) --no-print-directory all unit $(BENCH_TOOLS) fuzz-build
	@tests/run.sh

# compose.yaml on this machine's Docker engine (tests/deploy/run.sh); also
# part of `make test` where a Docker engine answers
test-deploy: deps
	@$(MAKE) --no-print-directory all
	@tests/deploy/run.sh

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/local/run.sh

stop:
	@deploy/local/stack.sh stop

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_TOOLS)
	@tests/bench/run.sh

# Kills each server process with -9 under load (and restarts PostgreSQL),
# ROUNDS times; one row per fault, 0 lost in every row (tests/chaos/chaos.sh)
.PHONY: chaos
chaos: deps
	@$(MAKE) --no-print-directory all
	@ROUNDS=$(or $(ROUNDS),1) tests/chaos/chaos.sh

asan:
	@$(MAKE) --no-print-directory SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" OPT=-O1 all

# --- Fuzzing and sanitizers (issue 15) ------------------------------------
# libFuzzer targets tests/fuzz/fuzz_*.c, built by clang with ASan/UBSan in
# build/obj-fuzz (a sub-make with CC, OBJ and SAN of its own). `make fuzz`
# runs each for FUZZ_S seconds; `make test` runs them a few seconds each.
# `make test-asan` runs the end-to-end suite on the `make asan` binaries.
FUZZ_S       ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_MAKE     = $(MAKE) --no-print-directory CC=clang OBJ=build/obj-fuzz OPT=-O1 \
                SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
.PHONY: fuzz fuzz-build test-asan

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(ALL_PROC_OBJS) $(OBJ)/libp2c2r-common.a
	@mkdir -p build/fuzz
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -Igateway -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-build:
	+@$(FUZZ_MAKE) $(FUZZ_TARGETS)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_S)

# The end-to-end suite on ASan/UBSan binaries with LeakSanitizer; bin/ holds
# the normal binaries again afterwards. Takes far longer than make test.
test-asan: deps
	@$(MAKE) --no-print-directory asan
	@tests/run_asan.sh; rc=$$?; rm -f $(BINS); $(MAKE) --no-print-directory all; exit $$rc

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/p2c2r/sql
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 ledger/sql/*.sql $(DESTDIR)$(PREFIX)/share/p2c2r/sql/
	install -d $(DESTDIR)$(PREFIX)/share/p2c2r/alerts
	install -m 0755 deploy/alerts/mail.sh $(DESTDIR)$(PREFIX)/share/p2c2r/alerts/
	install -d $(DESTDIR)$(PREFIX)/share/p2c2r/web && cp -R web/. $(DESTDIR)$(PREFIX)/share/p2c2r/web/
	$(Q)$(MAKE) --no-print-directory install-downloads

# What the gateway serves for the one-line install (gateway/gw_install.c,
# docs/deploy.md): the script, the agent for Debian 12 amd64 with its
# SHA-256 (made here, so that a binary changed later no longer matches)
# and its systemd unit, in PREFIX/share/p2c2r/downloads
DL_DIR := $(DESTDIR)$(PREFIX)/share/p2c2r/downloads
.PHONY: install-downloads
install-downloads: bin/p2c2r-agent
	install -d $(DL_DIR)
	install -m 0644 deploy/install-agent.sh $(DL_DIR)/install.sh
	install -m 0644 deploy/systemd/p2c2r-agent.service $(DL_DIR)/p2c2r-agent.service
	@# the agent only where it is an amd64 build (else the gateway serves none: 404)
	if [ "$$(uname -m)" = x86_64 ]; then \
	  install -m 0755 bin/p2c2r-agent $(DL_DIR)/p2c2r-agent-linux-amd64 && \
	  cd $(DL_DIR) && sha256sum p2c2r-agent-linux-amd64 >p2c2r-agent-linux-amd64.sha256; \
	else echo "install-downloads: not amd64 ($$(uname -m)): no agent binary published"; fi

# ---- libp2c2r, its examples and its install (issue 18; docs/sdk.md) ----
# The library is lib/ with the protobuf and frame code it shares with the
# servers, built twice: as PIC objects that hide everything but p2c2r_*
# (shared and static library, installed), and as plain objects in an
# archive that the agent links (its gamer is a client of the library).
LIB_VERSION  := 0.1.0
LIB_SONAME   := libp2c2r.so.0
CFLAGS       += -Ilib
LIB_SRCS     := $(wildcard lib/*.c) common/p2c_frame.c common/p2c_msg.c \
                common/p2c_test.c common/p2c_log.c
LIB_LIBS      = $(shell pkg-config --libs libwebsockets libprotobuf-c openssl 2>/dev/null) -lpthread
LIB_PIC      := build/obj-pic
LIB_PIC_OBJS := $(patsubst %.c,$(LIB_PIC)/%.o,$(LIB_SRCS)) $(LIB_PIC)/gen/p2c2r.pb-c.o
LIB_SO       := build/lib/libp2c2r.so.$(LIB_VERSION)
LIB_A        := build/lib/libp2c2r.a
LIB_AGENT_A  := $(OBJ)/libp2c2r-client.a
EXAMPLES     := $(patsubst examples/%.c,build/examples/%,$(wildcard examples/*.c))

.PHONY: lib examples install-lib
lib: $(LIB_SO) $(LIB_A)
examples: $(EXAMPLES)
unit: lib examples

$(LIB_PIC)/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC PIC  $<"
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -ffunction-sections -fdata-sections -MMD -MP -c -o $@ $<

$(LIB_PIC)/gen/p2c2r.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -ffunction-sections -fdata-sections -c -o $@ $<

# Unused code (the self-tests) is dropped; every symbol must resolve
$(LIB_SO): $(LIB_PIC_OBJS) lib/p2c2r.map
	@mkdir -p build/lib
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,$(LIB_SONAME) -Wl,--version-script=lib/p2c2r.map \
	    -Wl,--gc-sections -Wl,-z,defs -o $@ $(LIB_PIC_OBJS) $(LIB_LIBS)
	$(Q)ln -sf $(notdir $@) build/lib/$(LIB_SONAME)
	$(Q)ln -sf $(LIB_SONAME) build/lib/libp2c2r.so

# One relocatable object whose hidden symbols are made local, so that a
# program linking the static library cannot clash with its insides
$(LIB_A): $(LIB_PIC_OBJS)
	@mkdir -p build/lib
	@echo "  AR      $@"
	$(Q)ld -r -o build/lib/p2c2r-all.o $(LIB_PIC_OBJS)
	$(Q)objcopy --localize-hidden build/lib/p2c2r-all.o
	$(Q)rm -f $@ && ar rcs $@ build/lib/p2c2r-all.o

$(LIB_AGENT_A): $(patsubst %.c,$(OBJ)/%.o,$(wildcard lib/*.c))
	$(Q)rm -f $@ && ar rcs $@ $^

# The agent, its tests and the bench tools that link the agent's objects
# take the library's objects from the archive, ahead of the common one
LIB_USERS := bin/p2c2r-agent build/test/test_agent $(BENCH_TOOLS) $(FUZZ_TARGETS)
$(LIB_USERS): $(LIB_AGENT_A)
$(LIB_USERS): private LDLIBS := $(LIB_AGENT_A) $(OBJ)/libp2c2r-common.a $(LDLIBS)

# Examples link the shared library from the tree, as a game would link it
build/examples/%: examples/%.c $(LIB_SO)
	@mkdir -p build/examples
	@echo "  LINK    $@"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O2 -Ilib -o $@ $< \
	    -Lbuild/lib -Wl,-rpath,$(abspath build/lib) -lp2c2r $(shell pkg-config --cflags --libs jansson) -lm

install: install-lib
install-lib: $(LIB_SO) $(LIB_A)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 0644 lib/p2c2r.h $(DESTDIR)$(PREFIX)/include/
	install -m 0755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(LIB_SO)) $(DESTDIR)$(PREFIX)/lib/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(PREFIX)/lib/libp2c2r.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIB_VERSION)|' lib/p2c2r.pc.in \
	    >$(DESTDIR)$(PREFIX)/lib/pkgconfig/p2c2r.pc
# ---- end of libp2c2r ----

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
