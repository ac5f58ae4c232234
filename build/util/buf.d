build/util/buf.o: util/buf.c util/buf.h util/sg_err.h util/secmem.h
util/buf.h:
util/sg_err.h:
util/secmem.h:
