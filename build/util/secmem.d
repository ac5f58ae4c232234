build/util/secmem.o: util/secmem.c util/secmem.h util/sg_err.h
util/secmem.h:
util/sg_err.h:
