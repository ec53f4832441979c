# Installs headers, libraries, the gradpath command and a CMake package, so another
# project can `find_package(gradpath CONFIG REQUIRED)` and link gradpath::gradpath.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GRADPATH_MODULES autodiff ops graph check)
set(GRADPATH_INSTALL_TARGETS gradpath gradpath_warnings)
foreach(module ${GRADPATH_MODULES})
  if(TARGET gradpath_${module})
    set_target_properties(gradpath_${module} PROPERTIES EXPORT_NAME ${module})
    list(APPEND GRADPATH_INSTALL_TARGETS gradpath_${module})
    list(APPEND GRADPATH_HEADER_MODULES ${module})
  endif()
endforeach()
# Headers: the public names <gradpath/gradpath.hpp>, <gradpath/ops.hpp>, ... as they are,
# and each layer's headers under include/gradpath/<layer>/, their includes of one another
# made relative by cmake/install_headers.cmake. Users add include/ only.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gradpath DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
install(CODE "
  set(GRADPATH_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(GRADPATH_STAGE_DIR \"${PROJECT_BINARY_DIR}/install-headers\")
  set(GRADPATH_INCLUDE_DIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(GRADPATH_MODULES \"${GRADPATH_HEADER_MODULES}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/install_headers.cmake\")")
set_target_properties(gradpath_warnings PROPERTIES EXPORT_NAME warnings)
if(TARGET gradpath_cli)
  install(TARGETS gradpath_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(TARGETS ${GRADPATH_INSTALL_TARGETS} EXPORT gradpathTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT gradpathTargets NAMESPACE gradpath:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gradpath)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/gradpathConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gradpathConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gradpath)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gradpathConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gradpathConfig.cmake ${PROJECT_BINARY_DIR}/gradpathConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gradpath)
