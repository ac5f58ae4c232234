build/keystore/db.o: keystore/db.c keystore/ksint.h keystore/keystore.h \
 smime/smime.h util/sg_err.h util/spool.h util/sg_err.h util/secfile.h \
 util/secmem.h
keystore/ksint.h:
keystore/keystore.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
util/secfile.h:
util/secmem.h:
