build/policy/sign.o: policy/sign.c policy/policy.h util/sg_err.h
policy/policy.h:
util/sg_err.h:
