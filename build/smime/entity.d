build/smime/entity.o: smime/entity.c smime/mimeint.h smime/smime.h \
 util/sg_err.h util/spool.h util/sg_err.h util/buf.h
smime/mimeint.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
util/buf.h:
