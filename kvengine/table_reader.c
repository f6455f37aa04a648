/* table_reader.c - placeholder until the module lands. */
typedef int sett_placeholder_table_reader;
