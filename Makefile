# SPDX-License-Identifier: Apache-2.0
# Sluice build. Out-of-tree into $(BUILD) (default build/). Quiet unless V=1.
#
#   make            build everything (release flags)
#   make test       deps + sanitizer build + every suite; ends with "N passed, N failed"
#   make demo       deps + build + the main job on a local lab
#   make bench      benchmarks; results under docs/benchmarks/
#   make bench-modes  the full service-dataplane comparison (docs/benchmarks/modes/)
#   make lint       clang-format check, cppcheck, clang-tidy
#   make deps       install missing Debian packages (idempotent)
#
# Components are static libraries plus a thin main.c: every *.c in a component
# directory except main.c goes into lib<comp>.a.

.DEFAULT_GOAL := all
BUILD     ?= build
SANITIZER ?=
V         ?= 0
CC        ?= cc

ifeq ($(V),0)
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
else
Q :=
msg = @true
endif

PKGS      := json-c libevent libcurl sqlite3 libbpf libmnl libnftnl libnl-3.0 libnl-route-3.0 libnl-genl-3.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -levent_pthreads -lelf -lz -lpthread -lm

WARN   := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
          -Wstrict-prototypes -Wno-unused-parameter -Wvla
# OPT is the optimisation level; CFLAGS/LDFLAGS from the command line are
# appended, never replace the project's flags.
OPT    ?= -O2 -g
ALL_CFLAGS := $(OPT) -std=gnu11 $(WARN) -MMD -MP -D_GNU_SOURCE -fno-omit-frame-pointer \
          -Ilib/include -Icontrol/include -Iagent/include -Ibpf/include -I$(BUILD)/bpf -I. \
          -Idns -Icni-plugin -Inetpol \
          $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(LDFLAGS)
ifneq ($(SANITIZER),)
ALL_CFLAGS  += -fsanitize=$(SANITIZER) -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=$(SANITIZER)
endif

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin

# --- components -------------------------------------------------------------
LIB_SRC     := $(wildcard lib/*.c)
CONTROL_SRC := $(filter-out control/main.c,$(wildcard control/*.c))
AGENT_SRC   := $(filter-out agent/main.c,$(wildcard agent/*.c))
DNS_SRC     := $(filter-out dns/main.c,$(wildcard dns/*.c))
CNI_SRC     := $(filter-out cni-plugin/main.c,$(wildcard cni-plugin/*.c))
NETPOL_SRC  := $(wildcard netpol/*.c)

LIBSLUICE  := $(BUILD)/lib/libsluice.a
LIBCONTROL := $(BUILD)/lib/libcontrol.a
LIBAGENT   := $(BUILD)/lib/libagent.a
LIBDNS     := $(BUILD)/lib/libdns.a
LIBCNI     := $(BUILD)/lib/libcni.a
LIBNETPOL  := $(BUILD)/lib/libnetpol.a
# Every binary links all component libraries (order: users before providers).
ALL_LIBS   := $(LIBAGENT) $(LIBNETPOL) $(LIBDNS) $(LIBCNI) $(LIBCONTROL) $(LIBSLUICE)

BINS := $(BIN)/sluice-control
ifneq ($(wildcard agent/main.c),)
BINS += $(BIN)/sluice-agent
endif
ifneq ($(wildcard dns/main.c),)
BINS += $(BIN)/sluice-dns
endif
ifneq ($(wildcard cni-plugin/main.c),)
BINS += $(BIN)/sluice-cni
endif

# --- eBPF -------------------------------------------------------------------
# clang -target bpf with vmlinux.h from the running kernel's BTF, then
# bpftool gen skeleton; user space includes the skeletons from $(BUILD)/bpf.
BPF_SRC   := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRC))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRC))
VMLINUX   := $(BUILD)/bpf/vmlinux.h
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Wno-unused-function \
              -I$(BUILD)/bpf -Ibpf/include -Ibpf -I.

$(VMLINUX):
	$(call msg,GEN,$@)
	@mkdir -p $(dir $@)
	$(Q)bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# Only the socket iterator reads kernel-internal structs (struct sock_common)
# and needs CO-RE; the others read UAPI context structs and packet headers,
# whose layout never moves. Without preserve_access_index they carry no CO-RE
# relocations, so libbpf does not load and parse the kernel's 5 MB BTF for
# each of them: that was ~40 ms of CPU per object on every agent start.
BPF_NO_CORE = $(if $(filter iter_%,$(notdir $*)),,-DBPF_NO_PRESERVE_ACCESS_INDEX)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX) $(wildcard bpf/include/*/*.h bpf/lib/*.h)
	$(call msg,BPF,$<)
	@mkdir -p $(dir $@)
	$(Q)clang $(BPF_CFLAGS) $(BPF_NO_CORE) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)bpftool gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

# --- tests ------------------------------------------------------------------
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BIN)/tests/%,$(UNIT_SRC))
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(BIN)/tests/replay_%,$(FUZZ_SRC))
TOOL_SRC  := $(wildcard tools/*/main.c)
TOOL_BINS := $(patsubst tools/%/main.c,$(BIN)/%,$(TOOL_SRC))

.PHONY: all deps test test-build unit demo bench bench-modes lint format clean fuzz
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BINS) $(TOOL_BINS) $(BPF_OBJS)

$(OBJ)/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBSLUICE): $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBCONTROL): $(patsubst %.c,$(OBJ)/%.o,$(CONTROL_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Agent objects include the BPF skeletons.
$(patsubst %.c,$(OBJ)/%.o,$(wildcard agent/*.c) $(wildcard tools/*/main.c) $(wildcard tests/unit/*.c)): | $(BPF_SKELS)

$(LIBAGENT): $(patsubst %.c,$(OBJ)/%.o,$(AGENT_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/sluice-control: $(OBJ)/control/main.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/sluice-agent: $(OBJ)/agent/main.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(LIBDNS): $(patsubst %.c,$(OBJ)/%.o,$(DNS_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBCNI): $(patsubst %.c,$(OBJ)/%.o,$(CNI_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBNETPOL): $(patsubst %.c,$(OBJ)/%.o,$(NETPOL_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/sluice-dns: $(OBJ)/dns/main.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/sluice-cni: $(OBJ)/cni-plugin/main.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/%: $(OBJ)/tools/%/main.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/tests/test_%: $(OBJ)/tests/unit/test_%.o $(OBJ)/tests/unit/harness.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Fuzz targets are built twice: with libFuzzer (make fuzz, clang) and as a
# replay driver that runs every corpus file once (part of make test).
$(BIN)/tests/replay_%: $(OBJ)/tests/fuzz/%.o $(OBJ)/tests/fuzz/replay_main.o $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Ilib/include -Icontrol/include -Iagent/include \
               -Ibpf/include -I$(BUILD)/bpf -I. -Idns -Icni-plugin -Inetpol $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined
fuzz: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(CONTROL_SRC) $(AGENT_SRC) $(DNS_SRC) $(CNI_SRC) \
		$(NETPOL_SRC) \
		| $(BPF_SKELS)
	$(call msg,FUZZ,$@)
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(PKG_LIBS)

# --- top-level jobs ---------------------------------------------------------
deps:
	$(Q)scripts/deps.sh

# The test build lives in its own directory so release and sanitizer objects
# never mix (TEST_BUILD=build/mine gives a private one).
TEST_BUILD ?= build/test
test-build:
	$(Q)$(MAKE) --no-print-directory BUILD=$(TEST_BUILD) SANITIZER=address,undefined \
		OPT="-O1 -g" all $(patsubst $(BUILD)/%,$(TEST_BUILD)/%,$(UNIT_BINS) $(FUZZ_REPLAY))

test: deps
	$(Q)$(MAKE) --no-print-directory test-build
	$(Q)BUILD=$(TEST_BUILD) tests/run.sh

demo: deps all
	$(Q)tools/demo.sh

bench: deps all
	$(Q)tools/bench/run.sh

# The service dataplane comparison, full profile (1 to 50k Services; ~40 min on a quiet 2-core
# VM, the script prints its estimate at the start).
bench-modes: deps all
	$(Q)tools/bench/modes.sh

lint:
	$(Q)scripts/lint.sh

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
