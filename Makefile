# P2C2R: one Makefile for build, deps, run, test, bench, install.
# `make` builds bin/*; `make run` and `make test` install what is missing first.

PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKGS      := libzmq libczmq libprotobuf-c libpq libwebsockets jansson openssl zlib libpng
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

.PHONY: all deps run test unit e2e bench asan install clean stop check-tools test-deploy
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
	@$(MAKE) --no-print-directory all unit $(BENCH_TOOLS)
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

asan:
	@$(MAKE) --no-print-directory SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" OPT=-O1 all

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/p2c2r/sql
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 ledger/sql/*.sql $(DESTDIR)$(PREFIX)/share/p2c2r/sql/

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
