#ifndef UNIT_H
#define UNIT_H
#endif
