build/tools/init.o: tools/init.c tools/cmd.h keystore/keystore.h \
 smime/smime.h util/sg_err.h util/spool.h util/sg_err.h milter/config.h \
 policy/policy.h
tools/cmd.h:
keystore/keystore.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
milter/config.h:
policy/policy.h:
