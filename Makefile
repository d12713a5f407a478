# Makefile - builds clientele-api and clientele-worker, and drives run/test.
#
#   make            build build/clientele-api and build/clientele-worker
#   make run        install what is missing, start PostgreSQL + Redis under .run/, migrate,
#                   load demo data, run the API and the worker until Ctrl-C
#   make test       the same set-up in a throwaway .test/ cluster, an ASan/UBSan build,
#                   every unit and integration test (SUITES="customers_test crud" selects some)
#   make memcheck   the unit tests under valgrind
#
# SAN=1 selects the sanitizer build (in build/asan).

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/asan
OPT = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
OPT = -O2
endif

PKGS = libh2o-evloop jansson libpq hiredis libjwt libargon2 yaml-0.1 openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS = -std=gnu11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter -DH2O_USE_LIBUV=0 -I. $(PKG_CFLAGS) -MMD -MP
LDFLAGS = $(OPT)
LDLIBS = $(PKG_LIBS) -lpthread -lm

COMMON_SRC := $(wildcard common/*.c)
API_SRC := $(filter-out api/main.c,$(wildcard api/*.c))
WORKER_SRC := $(filter-out worker/main.c,$(wildcard worker/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
API_OBJ := $(API_SRC:%.c=$(BUILD)/%.o) $(BUILD)/api/openapi_blob.o
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)

UNIT_SRC := $(wildcard tests/unit/*/*_test.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)
SUPPORT_SRC := $(wildcard tests/support/*.c)
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/%.o)
INTEG_SRC := $(wildcard tests/integration/*_test.c)
INTEG_BIN := $(INTEG_SRC:%.c=$(BUILD)/%)

.PHONY: all run test unit-build memcheck clean deps format

all: $(BUILD)/clientele-api $(BUILD)/clientele-worker

V ?= 0
ifeq ($(V),0)
Q = @
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/api/openapi_blob.o: api/openapi_blob.S openapi/openapi.yaml
	@mkdir -p $(dir $@)
	$(CC) -c -I. $< -o $@

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	$(Q)$(AR) rcs $@ $^
$(BUILD)/libapi.a: $(API_OBJ)
	$(Q)$(AR) rcs $@ $^
$(BUILD)/libworker.a: $(WORKER_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(AR) rcs $@ $^ $(if $(WORKER_OBJ),,)

$(BUILD)/clientele-api: $(BUILD)/api/main.o $(BUILD)/libapi.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/clientele-worker: $(BUILD)/worker/main.o $(BUILD)/libworker.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests include the file under test (to reach its statics) and link the
# rest of its directory's library; the archive supplies only what is missing.
$(BUILD)/tests/unit/common/%_test: tests/unit/common/%_test.c $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) $< $(BUILD)/libcommon.a -o $@ $(LDLIBS) $(CHECK_LIBS)
$(BUILD)/tests/unit/api/%_test: tests/unit/api/%_test.c $(BUILD)/libapi.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) $< $(BUILD)/libapi.a $(BUILD)/libcommon.a -o $@ $(LDLIBS) $(CHECK_LIBS)
$(BUILD)/tests/unit/worker/%_test: tests/unit/worker/%_test.c $(BUILD)/libworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) $< $(BUILD)/libworker.a $(BUILD)/libcommon.a -o $@ $(LDLIBS) $(CHECK_LIBS)
$(BUILD)/tests/integration/%_test: tests/integration/%_test.c $(SUPPORT_OBJ) $(BUILD)/libapi.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) $< $(SUPPORT_OBJ) $(BUILD)/libapi.a $(BUILD)/libcommon.a -o $@ $(LDLIBS) $(CHECK_LIBS)
$(BUILD)/tests/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

unit-build: all $(UNIT_BIN) $(INTEG_BIN)

deps:
	scripts/deps.sh

run:
	scripts/run.sh

test:
	scripts/test.sh $(SUITES)

memcheck: unit-build
	@for t in $(UNIT_BIN); do CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full $$t || exit 1; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:
