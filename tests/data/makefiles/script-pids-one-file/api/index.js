const http = require('http');
const PORT = process.env.PORT || 3020;
http.createServer((req, res) => res.end('board')).listen(PORT);
