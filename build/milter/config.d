build/milter/config.o: milter/config.c milter/config.h policy/policy.h \
 util/sg_err.h smime/smime.h util/spool.h util/sg_err.h util/log.h
milter/config.h:
policy/policy.h:
util/sg_err.h:
smime/smime.h:
util/spool.h:
util/sg_err.h:
util/log.h:
