module example.com/notesrv

go 1.19
