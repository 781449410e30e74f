-- tshark -X lua_script:lab/tshark/cql-over-tls.lua -d tcp.port==9042,tls -o tls.keylog_file:KEYS -Y cql ...
-- Hands decrypted TLS application data on port 9042 to Wireshark's CQL dissector, which registers on
-- tcp.port 9042 only (tshark 4.0 refuses "-d tls.port==9042,cql" and an ssl_keys entry naming cql).
local cql = DissectorTable.get("tcp.port"):get_dissector(9042)
DissectorTable.get("tls.port"):add(9042, cql)
