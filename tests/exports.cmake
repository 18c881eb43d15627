# libetap.so must export only the public API: C names etap_* and C++ names in namespace etap declared in
# include/etap (internal code is hidden). Fails listing every other defined dynamic symbol.
get_target_property(etap_type etap TYPE)
find_program(ETAP_NM NAMES nm)
if(etap_type STREQUAL "SHARED_LIBRARY" AND ETAP_NM)
  add_test(NAME libetap_exports
           COMMAND ${CMAKE_COMMAND} -DLIBRARY=$<TARGET_FILE:etap> -DNM=${ETAP_NM}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/exports/check.cmake)
  set_tests_properties(libetap_exports PROPERTIES LABELS cpu)
endif()
