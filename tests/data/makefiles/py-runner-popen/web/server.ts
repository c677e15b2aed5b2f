import { createServer } from "node:http";

const port = Number(process.env.PORT || 5230);

createServer((req, res) => res.end("ledger")).listen(port);
