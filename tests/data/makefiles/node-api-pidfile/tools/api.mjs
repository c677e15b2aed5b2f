import http from "node:http";
http.createServer((q, r) => r.end("ok")).listen(Number(process.env.PORT || 4811));
