build/util/spool.o: util/spool.c util/buf.h util/sg_err.h util/spool.h
util/buf.h:
util/sg_err.h:
util/spool.h:
