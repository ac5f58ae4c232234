build/tools/sign.o: tools/sign.c smime/smime.h util/sg_err.h util/spool.h \
 util/sg_err.h tools/cmd.h keystore/keystore.h milter/config.h \
 policy/policy.h
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
tools/cmd.h:
keystore/keystore.h:
milter/config.h:
policy/policy.h:
