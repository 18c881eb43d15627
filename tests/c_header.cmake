# The C API header must compile as plain C11 (no C++ and no CUDA header needed).
find_program(ETAP_C_COMPILER NAMES cc gcc clang)
if(ETAP_C_COMPILER)
  add_test(NAME c_header_compiles_as_c11
           COMMAND ${ETAP_C_COMPILER} -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c
                   -include ${PROJECT_SOURCE_DIR}/include/etap/etap.h /dev/null)
  set_tests_properties(c_header_compiles_as_c11 PROPERTIES LABELS cpu)
endif()
