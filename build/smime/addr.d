build/smime/addr.o: smime/addr.c smime/smime.h util/sg_err.h util/spool.h \
 util/sg_err.h
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
