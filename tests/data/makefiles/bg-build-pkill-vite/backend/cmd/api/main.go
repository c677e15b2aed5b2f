package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	port := os.Getenv("API_PORT")
	if port == "" {
		port = "3013"
	}
	log.Fatal(http.ListenAndServe(":"+port, mux))
}
