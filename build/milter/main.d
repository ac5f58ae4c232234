build/milter/main.o: milter/main.c milter/milter.h keystore/keystore.h \
 smime/smime.h util/sg_err.h util/spool.h util/sg_err.h milter/config.h \
 policy/policy.h util/log.h util/secfile.h util/secmem.h
milter/milter.h:
keystore/keystore.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
milter/config.h:
policy/policy.h:
util/log.h:
util/secfile.h:
util/secmem.h:
