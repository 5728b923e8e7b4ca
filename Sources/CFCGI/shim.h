/* Only the reentrant fcgiapp.h API: fcgi_stdio.h redefines stdio and cannot be used from Swift. */
#include <fcgiapp.h>
#include <fastcgi.h>
