module feeds

go 1.21
