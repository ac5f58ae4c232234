build/milter/main.o: milter/main.c milter/milter.h milter/config.h \
 policy/policy.h util/sg_err.h smime/smime.h util/spool.h util/sg_err.h \
 milter/signer.h keystore/keystore.h util/log.h util/secfile.h \
 util/secmem.h
milter/milter.h:
milter/config.h:
policy/policy.h:
util/sg_err.h:
smime/smime.h:
util/spool.h:
util/sg_err.h:
milter/signer.h:
keystore/keystore.h:
util/log.h:
util/secfile.h:
util/secmem.h:
