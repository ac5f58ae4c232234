build/keystore/certs.o: keystore/certs.c keystore/ksint.h \
 keystore/keystore.h smime/smime.h util/sg_err.h util/spool.h \
 util/sg_err.h util/secmem.h
keystore/ksint.h:
keystore/keystore.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
util/secmem.h:
