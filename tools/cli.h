#ifndef SETT_CLI_H
#define SETT_CLI_H
#endif
