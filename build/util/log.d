build/util/log.o: util/log.c util/log.h util/sg_err.h
util/log.h:
util/sg_err.h:
