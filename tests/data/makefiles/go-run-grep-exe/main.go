package main

import (
	"net/http"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "feeds" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	}
	http.ListenAndServe(":3072", nil)
}
