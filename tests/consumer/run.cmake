# Installs the etap build tree into a temporary prefix, then configures, builds and runs the consumer project
# against it. Also checks that README.md shows readme_example.cpp verbatim.
# cmake -DETAP_BINARY_DIR=... -DETAP_SOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -DCXX_COMPILER=...
#       -DCUDA_ROOT=... -P run.cmake
set(consumer_dir ${ETAP_SOURCE_DIR}/tests/consumer)

file(READ ${ETAP_SOURCE_DIR}/README.md readme)
file(READ ${consumer_dir}/readme_example.cpp example)
string(FIND "${readme}" "${example}" position)
if(position EQUAL -1)
  message(FATAL_ERROR "README.md does not contain tests/consumer/readme_example.cpp verbatim: update the C++ "
                      "example in the README (or the file) so that they match")
endif()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${result})")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
run_step("cmake --install" ${CMAKE_COMMAND} --install ${ETAP_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
run_step("configuring the consumer"
         ${CMAKE_COMMAND} -S ${consumer_dir} -B ${WORK_DIR}/build -G ${GENERATOR}
         -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCUDAToolkit_ROOT=${CUDA_ROOT})
run_step("building the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("running the consumer" ${WORK_DIR}/build/etap_consumer)
