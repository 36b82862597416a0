# Postern - top-level Makefile (GNU make)
#
#   make            build everything into build/
#   make SAN=1      the same with ASan+UBSan, into build-san/
#   make check      unit tests (prove) then integration tests (pytest)
#   make fuzz       build the libFuzzer targets with clang and run each briefly
#   make run        a demo instance in ./run/, in the foreground
#   make deps       check (and, as root, install) the Debian build/test deps
#   make install    FHS install (PREFIX, DESTDIR); make install-users as root
#
# Sources are found by convention, so adding a file needs no Makefile edit:
#   lib/*.c lib/*/*.c     -> libpostern.a (except *_test.c and *_fuzz.c)
#   DIR/DIR.c             -> the program DIR (main file), with DIR/*.c
#   EXTRA_PROGRAMS        -> more programs from a folder's files (below)
#   */*_test.c            -> a TAP unit test, linked with libpostern (and, in
#                            a program folder, that program's objects but main)
#   */*_fuzz.c            -> a libFuzzer target (make fuzz)
#   tests/progs/*.c       -> helper programs the integration tests run

SHELL := /bin/bash
.DEFAULT_GOAL := all

SAN ?= 0
ifeq ($(FUZZ),1)
B ?= build-fuzz
else ifeq ($(SAN),1)
B ?= build-san
else
B ?= build
endif

CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif
PKG_CONFIG ?= pkg-config

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wvla -fno-common
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -D_GNU_SOURCE $(WARN) -Ilib -MMD -MP
LDFLAGS ?=
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else ifneq ($(FUZZ),1)
CFLAGS += -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDFLAGS += -pie -Wl,-z,relro,-z,now
endif
ifeq ($(FUZZ),1)
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DPOSTERN_FUZZ
endif

pc = $(shell $(PKG_CONFIG) $(1) 2>/dev/null)
LIBS_DB    := -ldb
LIBS_CRYPT := $(or $(call pc,--libs libcrypt),-lcrypt)
LIBS_SSL   := $(or $(call pc,--libs openssl),-lssl -lcrypto)
LIBS_SASL  := $(or $(call pc,--libs libsasl2),-lsasl2)
LIBS_LDAP  := $(or $(call pc,--libs ldap),-lldap -llber)
LIBS_GSS   := $(or $(call pc,--libs heimdal-gssapi),-lgssapi)
LIBS_KRB5  := $(or $(call pc,--libs heimdal-krb5),-lkrb5)
LIBS_Z     := $(or $(call pc,--libs zlib),-lz)
CFLAGS_GSS := $(call pc,--cflags heimdal-gssapi)

# What each program links beyond libpostern (link only what it needs).
# Maps (ldap:) and lib/auth (kerberos, ldap) are everywhere, hence LDAP
# and KRB5 in the base.
LIBS_BASE     := $(LIBS_DB) $(LIBS_CRYPT) $(LIBS_LDAP) $(LIBS_KRB5)
LIBS_master   := $(LIBS_BASE)
LIBS_postern  := $(LIBS_BASE) $(LIBS_SSL)
LIBS_pop3d    := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_SASL)
LIBS_sieved   := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_SASL)
LIBS_imapd := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_Z) $(LIBS_SASL)
LIBS_imapd-mail := $(LIBS_DB) $(LIBS_CRYPT) $(LIBS_Z)
LIBS_smtpd    := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_SASL)
LIBS_list-mgr := $(LIBS_BASE) $(LIBS_SSL) -lresolv
LIBS_news-gw  := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_SASL)
LIBS_smtp     := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_SASL) -lresolv
LIBS_qmgr     := $(LIBS_BASE) $(LIBS_SSL)
LIBS_ALL      := $(LIBS_BASE) $(LIBS_SSL) $(LIBS_SASL) $(LIBS_LDAP) $(LIBS_Z) -lresolv

# ---------------------------------------------------------------- sources
LIB_SRCS := $(filter-out %_test.c %_fuzz.c,$(wildcard lib/*.c lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIBA     := $(B)/libpostern.a

# A folder can build more programs than DIR. Each of EXTRA_PROGRAMS has
# its main file MAIN_name in the folder (which DIR then leaves out), and
# links that main, the folder's other objects as an archive (so the
# linker takes only the files this main needs, and through them only
# the libpostern objects they need), libpostern and LIBS_name, with no
# LIBS_BASE default: list what the linker reports undefined, no more.
# imapd-mail is imapd's mail role without TLS, SASL, LDAP or Kerberos:
# one runs per session, so what it maps is what a session costs.
EXTRA_PROGRAMS := imapd-mail
MAIN_imapd-mail := imapd/imapd_mail.c
EXTRA_MAINS := $(foreach p,$(EXTRA_PROGRAMS),$(MAIN_$(p)))
extra_dir = $(patsubst %/,%,$(dir $(MAIN_$(1))))

PROG_DIRS := $(patsubst %/,%,$(dir $(wildcard */*.c)))
PROGRAMS  := $(sort $(foreach d,$(PROG_DIRS),$(if $(wildcard $(d)/$(d).c),$(d))))
prog_srcs  = $(filter-out %_test.c %_fuzz.c $(EXTRA_MAINS),$(wildcard $(1)/*.c))
prog_objs  = $(patsubst %.c,$(B)/obj/%.o,$(call prog_srcs,$(1)))
prog_nomain = $(filter-out $(B)/obj/$(1)/$(1).o,$(call prog_objs,$(1)))
BINS := $(PROGRAMS:%=$(B)/bin/%) $(EXTRA_PROGRAMS:%=$(B)/bin/%)

UNIT_SRCS := $(wildcard lib/*_test.c lib/*/*_test.c $(PROGRAMS:%=%/*_test.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(B)/test/%)
TPROG_SRCS := $(wildcard tests/progs/*.c)
TPROG_BINS := $(TPROG_SRCS:tests/progs/%.c=$(B)/test/progs/%)
FUZZ_SRCS := $(wildcard lib/*_fuzz.c lib/*/*_fuzz.c $(PROGRAMS:%=%/*_fuzz.c))

ALL_OBJS := $(LIB_OBJS) $(foreach p,$(PROGRAMS),$(call prog_objs,$(p))) \
    $(EXTRA_MAINS:%.c=$(B)/obj/%.o)

# ---------------------------------------------------------------- build
.PHONY: all
all: $(BINS) $(UNIT_BINS) $(TPROG_BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CFLAGS_GSS) -c -o $@ $<

$(LIBA): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

define prog_rule
$(B)/bin/$(1): $(call prog_objs,$(1)) $(LIBA)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $(call prog_objs,$(1)) $(LIBA) $$(or $$(LIBS_$(1)),$$(LIBS_BASE))
endef
$(foreach p,$(PROGRAMS),$(eval $(call prog_rule,$(p))))

# EXTRA_PROGRAMS: main, then the folder archive (DIR's objects but its
# main), then libpostern.
define prog_ar_rule
$(B)/obj/$(1)/$(1).a: $(call prog_nomain,$(1))
	rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach d,$(sort $(foreach p,$(EXTRA_PROGRAMS),$(call extra_dir,$(p)))),\
    $(eval $(call prog_ar_rule,$(d))))

define extra_rule
$(B)/bin/$(1): $(B)/obj/$(MAIN_$(1):.c=.o) $(B)/obj/$(2)/$(2).a $(LIBA)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS_$(1))
endef
$(foreach p,$(EXTRA_PROGRAMS),$(eval $(call extra_rule,$(p),$(call extra_dir,$(p)))))

# A unit test in a program folder links that program's objects but main.
define unit_rule
$(B)/test/$(1): $(B)/obj/$(1).o $(if $(filter lib/%,$(1)),,$(call prog_nomain,$(patsubst %/,%,$(dir $(1))))) $(LIBA)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBA) $$(LIBS_ALL)
endef
$(foreach t,$(UNIT_SRCS:%.c=%),$(eval $(call unit_rule,$(t))))

$(B)/test/progs/%: $(B)/obj/tests/progs/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LIBS_ALL)

-include $(ALL_OBJS:.o=.d) $(UNIT_SRCS:%.c=$(B)/obj/%.d) $(TPROG_SRCS:%.c=$(B)/obj/%.d) \
    $(FUZZ_SRCS:%.c=$(B)/obj/%.d)

# ---------------------------------------------------------------- deps
.PHONY: deps
deps:
	@bash scripts/deps.sh

# ---------------------------------------------------------------- tests
PYTEST ?= /usr/bin/python3 -m pytest
# The integration tests spend most of their time waiting on real daemons,
# so they run four at a time when pytest-xdist is there (each test has its
# own instance on its own ports). PYTEST_ARGS= runs them one by one.
HAVE_XDIST := $(shell /usr/bin/python3 -c 'import xdist' 2>/dev/null && echo yes)
PYTEST_ARGS ?= $(if $(HAVE_XDIST),-n 4)

.PHONY: check unit-check integration-check
check: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory unit-check
	$(MAKE) --no-print-directory integration-check

unit-check: $(UNIT_BINS)
	@cd $(B)/test && prove --norc -j2 $(UNIT_BINS:$(B)/test/%=./%)

integration-check: $(BINS) $(TPROG_BINS)
	POSTERN_BUILD=$(abspath $(B)) $(PYTEST) -q -p no:cacheprovider $(PYTEST_ARGS) tests

# ---------------------------------------------------------------- fuzz
FUZZ_SECONDS ?= 20
# CI passes FUZZ_FLAGS="-runs=N -seed=1": a fixed seed and run count make
# its smoke run repeatable, so a red CI is a reproducible finding, not luck.
FUZZ_FLAGS ?= -max_total_time=$(FUZZ_SECONDS)
FUZZ_BINS := $(FUZZ_SRCS:%.c=build-fuzz/fuzz/%)

.PHONY: fuzz fuzz-build
fuzz:
	$(MAKE) FUZZ=1 CC=clang fuzz-build
	@set -e -o pipefail; for f in $(FUZZ_BINS); do \
		name=$$(basename $$f); \
		seeds=$$(dirname $${f#build-fuzz/fuzz/})/fuzz-corpus/$$name; \
		[ -d "$$seeds" ] || seeds=; \
		echo "== $$f ($(FUZZ_FLAGS))"; \
		mkdir -p build-fuzz/corpus/$$name; \
		$$f $(FUZZ_FLAGS) -rss_limit_mb=1024 \
		    build-fuzz/corpus/$$name $$seeds 2>&1 | tail -n 3; \
	done

ifeq ($(FUZZ),1)
fuzz-build: $(FUZZ_SRCS:%.c=$(B)/fuzz/%)
$(B)/fuzz/%: $(B)/obj/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIBA) $(LIBS_ALL)
endif

# ---------------------------------------------------------------- run
RUN_DIR ?= run
RUN_PORT_BASE ?= 10000

.PHONY: run
run: deps
	$(MAKE) all
	@bash scripts/run.sh $(abspath $(B)) $(RUN_DIR) $(RUN_PORT_BASE)

# ---------------------------------------------------------------- install
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/postern
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)/postern
CLI_PROGRAMS := postern sendmail
DAEMONS := $(filter-out $(CLI_PROGRAMS),$(PROGRAMS)) $(EXTRA_PROGRAMS)

.PHONY: install install-users
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	for p in $(filter $(CLI_PROGRAMS),$(PROGRAMS)); do install -m 755 $(B)/bin/$$p $(DESTDIR)$(SBINDIR)/$$p; done
	for p in $(DAEMONS); do install -m 755 $(B)/bin/$$p $(DESTDIR)$(LIBEXECDIR)/$$p; done
	for s in 1 5 7 8; do for m in man/*.$$s; do \
		[ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done; done; true
	for f in conf/postern.conf conf/master.conf; do \
		t=$(DESTDIR)$(SYSCONFDIR)/$$(basename $$f); \
		if [ -e "$$t" ]; then install -m 644 $$f $$t.sample; \
		else sed -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' $$f > $$t; chmod 644 $$t; fi; \
	done

install-users:
	bash scripts/install-users.sh

# ---------------------------------------------------------------- clean
.PHONY: clean
clean:
	rm -rf build build-san build-fuzz
