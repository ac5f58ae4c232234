build/tools/segelctl.o: tools/segelctl.c keystore/keystore.h \
 smime/smime.h util/sg_err.h util/spool.h util/sg_err.h milter/config.h \
 policy/policy.h tools/cmd.h util/secfile.h util/secmem.h
keystore/keystore.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
milter/config.h:
policy/policy.h:
tools/cmd.h:
util/secfile.h:
util/secmem.h:
