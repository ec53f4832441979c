# ctest step: install this build into a scratch prefix, then configure, build and run
# tests/package (a consumer project) against it with find_package(gradpath CONFIG).
set(prefix ${BUILD_DIR}/package-test/prefix)
set(consumer ${BUILD_DIR}/package-test/consumer)
file(REMOVE_RECURSE ${BUILD_DIR}/package-test)
foreach(step
    "${CMAKE_COMMAND};--install;${BUILD_DIR};--prefix;${prefix}"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/package;-B;${consumer};-DCMAKE_PREFIX_PATH=${prefix};-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS};-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}"
    "${CMAKE_COMMAND};--build;${consumer}"
    "${consumer}/consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "package test step failed (${rc}): ${step}\n${out}\n${err}")
  endif()
endforeach()
message(STATUS "${out}")
