package main

const title = "notes"
