# Segel - S/MIME gateway milter for Postfix.
#
#   make            build everything into build/
#   make check      install missing packages, build, run every test
#   make demo       run the demonstration on a private Postfix on loopback
#   make asan       build and run the unit and milter tests under ASan+UBSan
#   make install    install into $(DESTDIR)$(PREFIX)
#
# SANITIZE=1 builds into build-asan/ with AddressSanitizer and UBSan.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DOCDIR ?= $(PREFIX)/share/doc/segel
CC ?= cc

comma := ,
PKGS := libconfig openssl libetpan sqlite3 libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(filter-out -specs=% -Wl$(comma)-z$(comma)relro -Wl$(comma)-z$(comma)now,$(shell pkg-config --libs $(PKGS) 2>/dev/null))

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter
ifeq ($(SANITIZE),1)
B := build-asan
HARDEN := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
OPT := -O1 -g
HARDEN_LD := -fsanitize=address,undefined
else
B := build
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE \
	-fstack-clash-protection
OPT := -O2 -g
HARDEN_LD := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
endif

CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(HARDEN_LD) $(EXTRA_LDFLAGS)
LIBS := $(PKG_LIBS) -lpthread

UTIL_SRC := $(wildcard util/*.c)
SMIME_SRC := $(wildcard smime/*.c)
KEYSTORE_SRC := $(wildcard keystore/*.c)
POLICY_SRC := $(wildcard policy/*.c)
MILTER_SRC := $(filter-out milter/main.c,$(wildcard milter/*.c))
TOOLS_SRC := $(wildcard tools/*.c)

obj = $(patsubst %.c,$(B)/%.o,$(1))

CORE_OBJ := $(call obj,$(UTIL_SRC) $(SMIME_SRC) $(KEYSTORE_SRC) $(POLICY_SRC))
APP_OBJ := $(call obj,$(MILTER_SRC))

UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/*_test.c))

PROGS := $(B)/segel-milter $(B)/segelctl $(B)/mtc

.PHONY: all check hardening unit-test milter-test cli-test valgrind-test e2e-test asan demo install deps \
	layering format format-check clean bench fuzz

all: $(PROGS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libsegel.a: $(CORE_OBJ) $(APP_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/segel-milter: $(B)/milter/main.o $(B)/libsegel.a
	$(CC) $(LDFLAGS) -o $@ $^ -lmilter $(LIBS)

$(B)/segelctl: $(call obj,$(TOOLS_SRC)) $(B)/libsegel.a
	$(CC) $(LDFLAGS) -o $@ $^ -lmilter $(LIBS)

$(B)/mtc: tests/mtc/mtc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) $(LDFLAGS) -o $@ $< -lpthread

$(B)/noop-milter: tests/bench/noop.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) $(LDFLAGS) -o $@ $< -lmilter -lpthread

# failure injection: our allocations and the OpenSSL calls of the signing path
FAULT_WRAPS := malloc calloc realloc CMS_sign CMS_add1_signer CMS_dataInit CMS_add1_cert \
	CMS_add_smimecap EVP_PKEY_sign i2d_CMS_ContentInfo RAND_bytes
$(B)/tests/faults_test: TEST_LDFLAGS = $(foreach f,$(FAULT_WRAPS),-Wl,--wrap=$(f))

$(B)/tests/%_test: tests/unit/%_test.c $(B)/libsegel.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(TEST_LDFLAGS) -o $@ $< $(B)/libsegel.a -lcmocka -lmilter $(LIBS)

deps:
	@tests/install-deps.sh

hardening: $(PROGS)
	@tests/hardening.sh $(B)

layering:
	@tests/layering.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@tests/format-check.sh

unit-test: $(UNIT_TESTS) $(PROGS)
	@tests/run-unit.sh $(B) $(UNIT_TESTS)

milter-test: $(PROGS)
	@BUILD=$(B) tests/milter/run.sh

cli-test: $(PROGS)
	@st=0; for t in tests/cli/test_*.sh; do BUILD=$(B) $$t || st=1; done; exit $$st

valgrind-test: $(PROGS)
	@BUILD=$(B) VALGRIND=1 tests/milter/run.sh

e2e-test: $(PROGS)
	@BUILD=$(B) tests/e2e/run.sh

check: deps
	@$(MAKE) --no-print-directory layering format-check
	@$(MAKE) --no-print-directory all
	@rm -f $(B)/results.txt
	@$(MAKE) --no-print-directory -k hardening unit-test milter-test cli-test e2e-test; \
	tests/summary.sh $(B)

asan: deps
	@$(MAKE) --no-print-directory SANITIZE=1 all
	@rm -f build-asan/results.txt
	@$(MAKE) --no-print-directory -k SANITIZE=1 unit-test milter-test; \
	tests/summary.sh build-asan

demo: deps all
	@deploy/demo.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/segel $(DESTDIR)$(DOCDIR)
	install -m 0755 $(B)/segel-milter $(B)/segelctl $(DESTDIR)$(SBINDIR)/
	install -m 0644 conf/segel.conf $(DESTDIR)$(SYSCONFDIR)/segel/segel.conf.sample
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0644 deploy/segel-milter.service $(DESTDIR)$(PREFIX)/lib/systemd/system/

bench: all $(B)/noop-milter
	@BUILD=$(B) tests/bench/run.sh

fuzz:
	@tests/fuzz/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B) -name '*.d' 2>/dev/null)
