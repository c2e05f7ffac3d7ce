# Writes OUT (a C++ fragment) holding the three stock PowerDNS schema files as
# raw string literals. Run with -DSRC=<schema/pdns dir> -DOUT=<file>.
set(content "// Generated from schema/pdns/*.sql by cmake/embed_schema.cmake.\n")
foreach(pair "kSqliteSchema;schema.sqlite3.sql" "kPostgresSchema;schema.pgsql.sql"
             "kMysqlSchema;schema.mysql.sql")
  list(GET pair 0 name)
  list(GET pair 1 file)
  file(READ "${SRC}/${file}" sql)
  string(APPEND content "constexpr const char* ${name} = R\"zmschema(${sql})zmschema\";\n")
endforeach()
file(WRITE "${OUT}.tmp" "${content}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
