# A downstream CMake project built against `cmake --install` of this build tree (tests/consumer).
get_filename_component(ETAP_CUDA_ROOT ${CUDAToolkit_BIN_DIR} DIRECTORY)
add_test(NAME consumer_find_package
         COMMAND ${CMAKE_COMMAND} -DETAP_BINARY_DIR=${PROJECT_BINARY_DIR} -DETAP_SOURCE_DIR=${PROJECT_SOURCE_DIR}
                 -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer -DGENERATOR=${CMAKE_GENERATOR}
                 -DCXX_COMPILER=${CMAKE_CXX_COMPILER} -DCUDA_ROOT=${ETAP_CUDA_ROOT}
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
set_tests_properties(consumer_find_package PROPERTIES LABELS cpu)
