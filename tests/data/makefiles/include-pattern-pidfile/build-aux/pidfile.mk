# `make NAME.pid.clean` stops the process whose PID NAME.pid holds, then removes the file.
ifndef PIDFILE_MK
PIDFILE_MK := 1

%.pid.clean:
	if [ -f $*.pid ]; then kill $$(cat $*.pid) || true; fi
	rm -f $*.pid
.PHONY: %.pid.clean

endif
