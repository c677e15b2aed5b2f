# pidfile cleanup as a pattern rule: `make NAME.pid.clean` kills NAME.pid's process
ifeq ($(words $(filter $(abspath $(lastword $(MAKEFILE_LIST))),$(abspath $(MAKEFILE_LIST)))),1)

%.pid.clean:
	if [ -e $*.pid ]; then kill $$(cat $*.pid) || true; fi
	rm -f $*.pid
.PHONY: %.pid.clean

endif
