module example.com/feedsrv

go 1.19
