# Makefile - builds clientele-api, clientele-worker and clientele-admin, and drives run/test.
#
#   make            build build/clientele-api, build/clientele-worker and build/clientele-admin
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
API_OBJ := $(API_SRC:%.c=$(BUILD)/%.o) $(BUILD)/api/openapi_blob.o $(BUILD)/api/docs_blob.o
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)
ADMIN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard admin/*.c))

UNIT_SRC := $(wildcard tests/unit/*/*_test.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)
SUPPORT_SRC := $(wildcard tests/support/*.c)
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/%.o)
INTEG_SRC := $(wildcard tests/integration/*_test.c)
INTEG_BIN := $(INTEG_SRC:%.c=$(BUILD)/%)

.PHONY: all run test unit-build memcheck clean deps format clients clients-check

all: $(BUILD)/clientele-api $(BUILD)/clientele-worker $(BUILD)/clientele-admin

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

# The reference page's files (GET /docs) come from the npm packages pinned in
# openapi/package-lock.json, installed exactly as locked, without install scripts.
# Any npm installs them; the lint and the browser test need Node.js 20 (they say so).
NPM_CI = npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
openapi/node_modules/.package-lock.json: openapi/package.json openapi/package-lock.json
	cd openapi && $(NPM_CI)
	@touch $@

$(BUILD)/api/docs_blob.o: api/docs_blob.S openapi/node_modules/.package-lock.json
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
$(BUILD)/clientele-admin: $(ADMIN_OBJ) $(BUILD)/libcommon.a
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

# The TypeScript client (clients/typescript): its Node packages, pinned by its lock file and
# installed into its git-ignored node_modules, and its types generated from the spec into
# src/schema.d.ts, which is committed and never edited by hand. `make clients` regenerates it;
# `make clients-check` (run by make test) fails when it differs from what the spec gives.
TS_DIR = clients/typescript
TS_DEPS = $(TS_DIR)/node_modules/.package-lock.json
TS_GEN = cd $(TS_DIR) && node_modules/.bin/openapi-typescript ../../openapi/openapi.yaml \
	--default-non-nullable false --empty-objects-unknown --output

$(TS_DEPS): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

clients: $(TS_DEPS)
	$(TS_GEN) src/schema.d.ts

clients-check: $(TS_DEPS)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	($(TS_GEN) "$$tmp/schema.d.ts" >/dev/null 2>&1 || { echo "clients: openapi-typescript failed" >&2; exit 1; }) && \
	if ! diff -u $(TS_DIR)/src/schema.d.ts "$$tmp/schema.d.ts" >"$$tmp/diff"; then \
		head -n 40 "$$tmp/diff"; \
		echo "clients: $(TS_DIR)/src/schema.d.ts is stale: run make clients and commit it" >&2; exit 1; \
	fi

memcheck: unit-build
	@for t in $(UNIT_BIN); do CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full $$t || exit 1; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:
