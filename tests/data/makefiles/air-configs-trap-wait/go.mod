module example.com/ledgerhub

go 1.22
