build/util/err.o: util/err.c util/sg_err.h
util/sg_err.h:
