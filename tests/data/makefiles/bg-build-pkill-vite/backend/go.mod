module cellar-api

go 1.24
