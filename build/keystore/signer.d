build/keystore/signer.o: keystore/signer.c keystore/ksint.h \
 keystore/keystore.h smime/smime.h util/sg_err.h util/spool.h \
 util/sg_err.h
keystore/ksint.h:
keystore/keystore.h:
smime/smime.h:
util/sg_err.h:
util/spool.h:
util/sg_err.h:
