build/smime/mime.o: smime/mime.c smime/mimeint.h smime/smime.h \
 util/sg_err.h util/spool.h util/sg_err.h util/buf.h
smime/mimeint.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
util/buf.h:
