build/util/secfile.o: util/secfile.c util/secfile.h util/sg_err.h \
 util/secmem.h
util/secfile.h:
util/sg_err.h:
util/secmem.h:
